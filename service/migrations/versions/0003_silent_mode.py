"""Silent mode and hook-call counts (README "Going live safely").

Issued cards get a `mode`: `live` (sent to the EHR) or `silent` (evaluated and recorded under
CARDS_MODE=silent, never sent); every card stored before this revision was sent, so it is
`live`. `hook_calls` counts the successful hook calls per service, mode and day (UTC), so the
feedback report can say how often a card fires per 100 calls. No patient data: counts only.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issued_cards") as table:  # batch: SQLite alters by copying
        table.add_column(sa.Column("mode", sa.String(8), nullable=False, server_default="live"))
    op.create_table(
        "hook_calls",
        sa.Column("service_id", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(8), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hook_calls")
    with op.batch_alter_table("issued_cards") as table:
        table.drop_column("mode")
