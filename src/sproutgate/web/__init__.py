"""The hosted pages: sign-up, sign-in, reset, account, admin console, chat and the dev mailbox."""
