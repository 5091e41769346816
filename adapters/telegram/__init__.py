"""Telegram: the daemon's notifications (fills, kill switch, fatal errors, a daily summary) and
its commands (/status /positions /profit /decisions /kill), through python-telegram-bot.

It runs on the console's thread (`bot/console/server.py`), reads what the console reads, and
answers only the configured `[telegram] chat_id`; the bot token comes from
`LORABOT_TELEGRAM_TOKEN` only. Tests point `[telegram] api_url` at a local fake Bot API server.
"""
