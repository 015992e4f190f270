# acne-scar-cds: the CDS Hooks service under gunicorn, as an unprivileged user.
#   docker build -t acne-scar-cds .
#   docker run --rm -p 8080:8080 -v $PWD/issuers.yaml:/etc/acne-scar-cds/issuers.yaml:ro \
#     -e AUTH_ISSUERS_FILE=/etc/acne-scar-cds/issuers.yaml -e PUBLIC_BASE_URL=https://cds.hospital.org \
#     acne-scar-cds
# Configuration is by environment variable (README, Configuration). The image requires signed
# callers (AUTH_MODE=required): without trusted issuers or PUBLIC_BASE_URL it refuses to start
# and says so.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    HOST=0.0.0.0 \
    PORT=8080 \
    AUTH_MODE=required \
    DATABASE_URL=sqlite:////app/data/acne-scar-cds.sqlite3

# A fixed unprivileged uid/gid (numeric, so orchestrators can verify runAsNonRoot).
RUN groupadd --system --gid 10001 cds \
    && useradd --system --uid 10001 --gid cds --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cds

WORKDIR /app

# The code stays owned by root: the service never writes to it.
COPY pyproject.toml constraints.txt README.md ./
COPY cards ./cards
COPY service ./service
# /app/data holds the image's SQLite feedback store (DATABASE_URL above), the one place the
# service writes: mount a volume there, or point DATABASE_URL at PostgreSQL.
RUN pip install --no-cache-dir -c constraints.txt . \
    && rm -rf build ./*.egg-info \
    && mkdir -p /app/data \
    && chown 10001:10001 /app/data

USER 10001:10001

EXPOSE 8080

# No curl in the slim image: python fetches /healthz; any error or non-2xx answer fails.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=3)"]

# No control socket: it would live in $HOME, and this user has none.
CMD ["gunicorn", "-c", "service/gunicorn_conf.py", "--no-control-socket", "service.app:create_app()"]
