"""Study rules as pure functions: data and `now` in, decisions out; no Telegram, SQL or clock."""
