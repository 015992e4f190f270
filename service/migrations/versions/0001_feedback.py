"""Issued cards, their suggestions, and clinicians' feedback.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_cards",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("service_id", sa.String(64), nullable=False, index=True),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("hook_instance", sa.String(36), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "issued_suggestions",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("card_uuid", sa.String(36), sa.ForeignKey("issued_cards.uuid"), nullable=False, index=True),
        sa.Column("suggestion_key", sa.String(64), nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(36), sa.ForeignKey("issued_cards.uuid"), nullable=False, index=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("override_system", sa.String(255)),
        sa.Column("override_code", sa.String(64)),
        sa.Column("user_comment", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_once"),
    )
    op.create_table(
        "accepted_suggestions",
        sa.Column("feedback_id", sa.Integer, sa.ForeignKey("feedback.id"), primary_key=True),
        sa.Column("suggestion_uuid", sa.String(36), sa.ForeignKey("issued_suggestions.uuid"), primary_key=True),
    )


def downgrade() -> None:
    for table in ("accepted_suggestions", "feedback", "issued_suggestions", "issued_cards"):
        op.drop_table(table)
