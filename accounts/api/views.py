from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import ApiToken
from accounts.throttles import AnonRateThrottle, SignInRateThrottle


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()


class TokenView(APIView):
    """Exchange a username and password for an API token (shown once)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle, SignInRateThrottle]  # before any password is checked

    @extend_schema(request=TokenRequestSerializer, responses={201: TokenResponseSerializer}, auth=[])
    def post(self, request):
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(request, **body.validated_data)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid credentials, or the account is locked.")
        _, key = services.token_issue(user=user)
        token = ApiToken.objects.by_key(key).get()
        return Response({"token": key, "expires_at": token.expires_at}, status=status.HTTP_201_CREATED)


class CurrentTokenView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        token = request.auth
        if not isinstance(token, ApiToken):
            raise exceptions.ValidationError({"detail": "This request was not made with an API token."})
        services.token_revoke(token=token, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "agency": serializers.CharField(allow_null=True),
                "unit": serializers.CharField(allow_null=True),
                "role": serializers.CharField(),
                "clearance": serializers.CharField(),
            },
        )
    )
    def get(self, request):
        user = request.user
        return Response(
            {
                "username": user.username,
                "agency": user.agency.code if user.agency else None,
                "unit": user.unit.code if user.unit else None,
                "role": user.role,
                "clearance": user.clearance,
            }
        )
