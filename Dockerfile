# LeadFlow production image: gunicorn serving leadflow.wsgi; the same image runs the
# Celery worker and beat (see docker-compose.yml).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app

COPY . .
RUN pip install .

# Static files are collected at build time (served by WhiteNoise); the secret is a
# dummy that exists only for this step.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-real-secret \
    DJANGO_DEBUG=false \
    ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var \
    && chown -R app:app /app/var

USER app
EXPOSE 8000

CMD ["gunicorn", "leadflow.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--workers", "3", "--access-logfile", "-"]
