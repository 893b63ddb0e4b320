"""Settings of the course's project, reduced to the user module; values from the environment."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'bench-only-not-a-secret-0123456789abcdef')
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

INSTALLED_APPS = [
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'users',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
]

ROOT_URLCONF = 'meiduo.urls'
WSGI_APPLICATION = 'meiduo.wsgi.application'

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.environ.get('DJANGO_DB_PATH', str(BASE_DIR / 'db.sqlite3')),
        # gunicorn's workers write to one file; wait for the lock as long as a request may.
        'OPTIONS': {'timeout': 30},
    }
}
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

REDIS = os.environ.get('DJANGO_REDIS', 'redis://127.0.0.1:6379').rstrip('/')
VERIFY_DB, SESSION_DB, BROKER_DB = (int(n) for n in os.environ.get('DJANGO_REDIS_DBS', '2,1,15').split(','))

# As the course: sessions in the Redis cache 'session' (db 1), codes in 'verify_code' (db 2).
CACHES = {
    'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'},
    'session': {'BACKEND': 'meiduo.redis_cache.RedisCache', 'LOCATION': f'{REDIS}/{SESSION_DB}'},
    'verify_code': {'BACKEND': 'meiduo.redis_cache.RedisCache', 'LOCATION': f'{REDIS}/{VERIFY_DB}'},
}
SESSION_ENGINE = 'django.contrib.sessions.backends.cache'
SESSION_CACHE_ALIAS = 'session'

AUTH_USER_MODEL = 'users.User'
# Django's default PASSWORD_HASHERS: PBKDF2-SHA256 at 260,000 iterations in 3.2.

LANGUAGE_CODE = 'zh-hans'
TIME_ZONE = 'Asia/Shanghai'
USE_I18N = True
USE_TZ = True

CAPTCHA_FONT = os.environ.get('CAPTCHA_FONT', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf')
