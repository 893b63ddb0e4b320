from celery_tasks.main import celery_app


@celery_app.task(name='send_sms_code')
def send_sms_code(mobile, sms_code):
    # The course: CCP().send_template_sms(mobile, [sms_code, 5], 1); here the console, as its log shows.
    print('[mobile: %s] [sms_code: %s]' % (mobile, sms_code))
