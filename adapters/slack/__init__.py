"""The Slack surface: slash commands, Block Kit buttons, reactions, App Home and a modal on slack-bolt."""
