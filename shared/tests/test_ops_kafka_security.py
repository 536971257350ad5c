"""Secured Kafka configuration from the environment: what the services' broker
(`create_broker`) and the operator tools (`kap_shared.ops.kafka`) hand to aiokafka
for SASL_SSL + SCRAM-SHA-512, SASL_PLAINTEXT + PLAIN, SSL with a private CA, and
the error when credentials are missing. No broker needed: this is configuration."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512

from kap_shared.messaging.broker import create_broker, kafka_security
from kap_shared.ops.kafka import client_kwargs
from kap_shared.settings import KafkaSettings

CA_NAME = "KAP test Kafka CA"


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA certificate in PEM, like a private cluster's KAFKA_SSL_CAFILE."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("tls") / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def env_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> KafkaSettings:
    """KafkaSettings read from the environment, as the services read it."""
    for name in (
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CAFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0.kafka:9094,kafka-1.kafka:9094")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return KafkaSettings()


def sasl_env(
    protocol: str, username: str, password: str, mechanism: str | None = None
) -> dict[str, str]:
    """The environment of a SASL connection; KAFKA_SASL_MECHANISM only when given."""
    env = {
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_USERNAME": username,
        "KAFKA_SASL_PASSWORD": password,
    }
    return env | ({"KAFKA_SASL_MECHANISM": mechanism} if mechanism else {})


def broker_client_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """The aiokafka arguments faststream will use for the services' broker."""
    broker = create_broker(settings, client_id="intake")
    builder: Any = broker.config.broker_config.builder  # functools.partial(AIOKafkaConsumer, ...)
    keywords: dict[str, Any] = builder.keywords
    return keywords


def ca_subjects(context: ssl.SSLContext) -> list[str]:
    certs: list[Any] = context.get_ca_certs()
    return [
        str(value)
        for cert in certs
        for rdn in cert["subject"]
        for key, value in rdn
        if key == "commonName"
    ]


def test_plaintext_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = env_settings(monkeypatch)
    assert kafka_security(settings) is None
    kwargs = client_kwargs(settings)
    assert "security_protocol" not in kwargs
    assert kwargs["bootstrap_servers"] == "kafka-0.kafka:9094,kafka-1.kafka:9094"


def test_sasl_ssl_with_scram_sha_512(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    settings = env_settings(
        monkeypatch,
        **sasl_env("SASL_SSL", "kap-intake", "s3cret-from-a-secret", "SCRAM-SHA-512"),
        KAFKA_SSL_CAFILE=str(ca_file),
    )
    security = kafka_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl is True
    assert security.ssl_context is not None
    assert security.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert security.ssl_context.check_hostname is True
    assert CA_NAME in ca_subjects(security.ssl_context)

    for kwargs in (broker_client_kwargs(settings), client_kwargs(settings)):
        assert kwargs["security_protocol"] == "SASL_SSL"
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
        assert kwargs["sasl_plain_username"] == "kap-intake"
        assert kwargs["sasl_plain_password"] == "s3cret-from-a-secret"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    # the secret never shows in the settings' repr (logs, tracebacks)
    assert "s3cret-from-a-secret" not in repr(settings)


def test_sasl_ssl_without_a_ca_file_uses_the_system_trust_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = env_settings(
        monkeypatch, **sasl_env("SASL_SSL", "kap-intake", "pw", "SCRAM-SHA-512")
    )
    security = kafka_security(settings)
    assert security is not None
    assert security.ssl_context is not None
    assert CA_NAME not in ca_subjects(security.ssl_context)
    assert security.ssl_context.verify_mode is ssl.CERT_REQUIRED


def test_sasl_plaintext_with_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = env_settings(
        monkeypatch, **sasl_env("SASL_PLAINTEXT", "kap-monitoring", "pw", "PLAIN")
    )
    security = kafka_security(settings)
    assert isinstance(security, SASLPlaintext)
    assert security.use_ssl is False
    assert security.ssl_context is None
    for kwargs in (broker_client_kwargs(settings), client_kwargs(settings)):
        assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
        assert kwargs["sasl_mechanism"] == "PLAIN"
        assert kwargs["sasl_plain_username"] == "kap-monitoring"
        assert kwargs["ssl_context"] is None


def test_sasl_mechanism_defaults_to_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = env_settings(monkeypatch, **sasl_env("SASL_PLAINTEXT", "u", "p"))
    assert client_kwargs(settings)["sasl_mechanism"] == "PLAIN"


def test_ssl_with_a_private_ca(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    settings = env_settings(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(ca_file)
    )
    security = kafka_security(settings)
    assert type(security) is BaseSecurity
    assert security.use_ssl is True
    assert security.ssl_context is not None
    assert CA_NAME in ca_subjects(security.ssl_context)
    for kwargs in (broker_client_kwargs(settings), client_kwargs(settings)):
        assert kwargs["security_protocol"] == "SSL"
        assert "sasl_mechanism" not in kwargs
        assert kwargs["ssl_context"] is not None


def test_ssl_with_a_missing_ca_file_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = env_settings(
        monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=str(tmp_path / "nope.crt")
    )
    with pytest.raises(FileNotFoundError):
        kafka_security(settings)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
@pytest.mark.parametrize(
    "credentials",
    [{}, {"KAFKA_SASL_USERNAME": "kap-intake"}, {"KAFKA_SASL_PASSWORD": "pw"}],
    ids=["none", "no-password", "no-username"],
)
def test_missing_credentials_are_refused_with_the_variable_names(
    monkeypatch: pytest.MonkeyPatch, protocol: str, credentials: dict[str, str]
) -> None:
    settings = env_settings(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL=protocol,
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        **credentials,
    )
    message = "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are required"
    with pytest.raises(ValueError, match=message):
        kafka_security(settings)
    with pytest.raises(ValueError, match=message):
        create_broker(settings, client_id="intake")
    with pytest.raises(ValueError, match=message):
        client_kwargs(settings)


def test_unknown_protocol_is_refused_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="security_protocol"):
        env_settings(monkeypatch, KAFKA_SECURITY_PROTOCOL="SASL_TLS")
