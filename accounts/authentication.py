from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core import context

from .models import ApiToken


class HashedTokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`; the key is looked up by its SHA-256, and must be live."""

    keyword = "Token"

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            context.current().user = result[0]
        return result

    def authenticate_credentials(self, key):
        token = ApiToken.objects.live().by_key(key).select_related("user", "user__agency", "user__unit").first()
        # A lock stops password guessing; it does not cut off the user's existing tokens.
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token


class HashedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <key>`"}
