"""The independent Standard Webhooks verifier of tests/support/ checked against the specification's example."""

from __future__ import annotations

from tests.support.webhooks import verify_standard_webhook


def test_verifier_accepts_the_specification_example() -> None:
    # The example from the Standard Webhooks reference implementations.
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    body = b'{"test": 2432232314}'
    assert verify_standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body)
    assert not verify_standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", headers, body)
    assert not verify_standard_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers, body + b" ")
