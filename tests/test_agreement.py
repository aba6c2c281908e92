"""LocalAgreement on successive hypotheses (pipeline/agreement.py)."""

from babelfish.pipeline.agreement import LocalAgreement


def test_words_become_stable_once_two_hypotheses_agree_and_never_change_after() -> None:
    agreement = LocalAgreement()
    assert agreement.update("That agent") == ("", "That agent")  # one hypothesis: nothing agreed yet
    assert agreement.update("That agent is all") == ("That agent", "is all")
    assert agreement.update("That agent is already logged") == ("That agent is", "already logged")
    # a later pass that rewrites a stable word does not take it back
    assert agreement.update("The agent is already logged on.") == ("That agent is", "already logged on.")
    assert agreement.update("That agent is already logged on.")[0] == "That agent is"
    assert agreement.update("That agent is already logged on.")[0] == "That agent is already logged on."
    agreement.reset()
    assert agreement.update("Please enter") == ("", "Please enter")


def test_agreement_ignores_case_and_punctuation() -> None:
    agreement = LocalAgreement()
    agreement.update("Hello, world")
    assert agreement.update("hello world again")[0] == "hello world"
