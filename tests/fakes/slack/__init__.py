"""A fake Slack (Web API, files v2 uploads, response URLs, Socket Mode) for driving slack-bolt offline."""

from tests.fakes.slack.driver import SlackDriver
from tests.fakes.slack.server import FakeSlack

__all__ = ["FakeSlack", "SlackDriver"]
