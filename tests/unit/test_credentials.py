"""API tokens, sessions, CSRF tokens and webhook-secret strength: the pure rules behind the logins."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from hamster.credentials import ApiToken, Principal, Sessions, check_bearer, parse_tokens, safe_next
from hamster.errors import ConfigurationError
from hamster.intake.signatures import weakness
from hamster.settings import load_settings

READER = ApiToken("ci-bot", "read", "r" * 8 + "0123456789")
OPERATOR = ApiToken("ops", "operate", "o" * 8 + "0123456789")


def test_tokens_parse_with_their_roles_and_refuse_what_is_malformed():
    text = f"# who\nci-bot:read:{READER.token}\nops:operate:{OPERATOR.token}, late:read:{'x' * 16}"
    assert [(t.name, t.role) for t in parse_tokens(text)] == [
        ("ci-bot", "read"),
        ("ops", "operate"),
        ("late", "read"),
    ]
    for bad, why in [
        ("ops:admin:" + "x" * 20, "role must be read or operate"),
        ("ops:read:short", "needs 16\\+ characters"),
        ("o ps:read:" + "x" * 20, "expected name:role:token"),
        (f"a:read:{'x' * 16},a:operate:{'y' * 16}", "given twice"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_tokens(bad)
    assert "0123456789" not in repr(parse_tokens(text))


def test_settings_join_every_token_source_and_name_the_bad_one(tmp_path):
    listed = tmp_path / "tokens"
    listed.write_text(f"ops:operate:{OPERATOR.token}\n")
    settings = load_settings(
        api_token="legacy-token-0123456789", api_tokens=f"ci-bot:read:{READER.token}", api_tokens_file=listed
    )
    assert [(t.name, t.role) for t in settings.api_credentials()] == [
        ("api-token", "operate"),
        ("ci-bot", "read"),
        ("ops", "operate"),
    ]
    with pytest.raises(ConfigurationError, match="HAMSTER_API_TOKENS entry 1"):
        load_settings(api_tokens="ci-bot:root:" + "x" * 20)
    with pytest.raises(ConfigurationError, match="HAMSTER_API_TOKENS_FILE: cannot read it"):
        load_settings(api_tokens_file=tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="set both or neither"):
        load_settings(github_oauth_client_id="Iv1.abc")


def test_a_bearer_token_names_its_holder_or_is_wrong():
    tokens = (READER, OPERATOR)
    assert check_bearer(f"Bearer {OPERATOR.token}", tokens) == Principal("ops", "operate", "token")
    assert check_bearer(f"bearer  {READER.token} ", tokens) == Principal("ci-bot", "read", "token")
    assert check_bearer(None, tokens) == "missing"
    assert check_bearer(f"Basic {READER.token}", tokens) == "wrong"
    assert check_bearer("Bearer " + READER.token[:-1], tokens) == "wrong"
    assert check_bearer(f"Bearer {READER.token}", ()) == "wrong"
    assert Principal("ci-bot", "read", "token").may("read")
    assert not Principal("ci-bot", "read", "token").may("operate")


def test_sessions_are_signed_and_csrf_tokens_belong_to_one_session():
    sessions = Sessions("a-secret-key-for-tests", 3600)
    signed_in = Sessions.new(sub="octocat", role="operate", via="github")
    cookie = sessions.dump(signed_in)
    assert sessions.load(cookie) == signed_in
    assert Sessions.principal(sessions.load(cookie)) == Principal("octocat", "operate", "github")
    assert sessions.load(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None  # altered
    assert Sessions("another-key", 3600).load(cookie) is None  # signed with another key
    assert sessions.load("not a cookie") is None and sessions.load(None) is None
    assert Sessions.principal(Sessions.new()) is None  # anonymous (before signing in)
    assert Sessions.principal({"sid": "x", "sub": "x", "role": "root"}) is None
    other = Sessions.new(sub="octocat", role="operate", via="github")
    token = sessions.csrf_token(signed_in)
    assert sessions.csrf_ok(signed_in, token)
    assert not sessions.csrf_ok(other, token)  # the same user's other session
    assert not sessions.csrf_ok(signed_in, None) and not sessions.csrf_ok(None, token)


def test_after_signing_in_the_browser_goes_only_to_a_path_of_this_site():
    assert safe_next("/runs/abc?x=1") == "/runs/abc?x=1"
    for hostile in ("//evil.example", "https://evil.example/", "/\\evil.example", "runs", None, "/a\nb"):
        assert safe_next(hostile) == "/runs"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("change-me", "is a placeholder"),
        ("Change_Me_Now_Please_123", "is a placeholder"),
        ("your-webhook-secret", "is a placeholder"),
        ("tooshort-0123", "is 13 characters long; use at least 20"),
        ("abababababababababababab", "uses only 2 different characters"),
        ("f3c1d2e4a5b6978812ab34cd", None),
    ],
)
def test_webhook_secret_strength(secret, why):
    assert weakness(secret) == why


def test_a_session_past_its_age_is_no_session():
    """A cookie signed two hours ago (by itsdangerous itself, dated back) is refused by a one-hour session
    and accepted by a three-hour one."""

    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    session = Sessions.new(sub="octocat", role="read", via="github")
    old = URLSafeTimedSerializer("a-secret-key-for-tests", salt="hamster-session", signer=TwoHoursAgo)
    cookie = old.dumps(session)
    assert Sessions("a-secret-key-for-tests", 3600).load(cookie) is None
    assert Sessions("a-secret-key-for-tests", 3 * 3600).load(cookie) == session
