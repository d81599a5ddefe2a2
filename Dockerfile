# The studio image: web (manage.py serve: gunicorn with uvicorn workers), celery worker and
# celery beat all run from it (docker-compose.yml). The default command is the web tier.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap nodejs npm make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN if [ -f package.json ]; then npm ci --no-audit --no-fund && python scripts/vendor_static.py; fi \
 && SECRET_KEY=build-only-0000000000000000000000000000000000000000000000 \
    INTERNAL_API_KEY=build-only DATABASE_URL=postgres://build/build \
    python manage.py collectstatic --noinput -v 0
RUN useradd --create-home --uid 10001 studio && mkdir -p /app/data && chown studio /app/data
USER studio
EXPOSE 8000
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]
