"""The course's Celery app: `celery -A celery_tasks.main worker -l info`."""
import os

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'meiduo.settings')

from celery import Celery  # noqa: E402
from django.conf import settings  # noqa: E402

celery_app = Celery('celery_tasks')
celery_app.conf.broker_url = f'{settings.REDIS}/{settings.BROKER_DB}'
celery_app.autodiscover_tasks(['celery_tasks.sms'])
