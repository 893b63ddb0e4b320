from django.urls import path, register_converter

from users import views


class UUIDConverter:
    regex = r'[\w-]+'

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


class MobileConverter:
    regex = r'1[3-9]\d{9}'

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(UUIDConverter, 'uuid')
register_converter(MobileConverter, 'mobile')

urlpatterns = [
    path('image_codes/<uuid:uuid>/', views.ImageCodeView.as_view()),
    path('sms_codes/<mobile:mobile>/', views.SmsCodeView.as_view()),
    path('register/', views.RegisterView.as_view()),
    path('login/', views.LoginView.as_view()),
    path('csrf_token/', views.CsrfTokenView.as_view()),
]
