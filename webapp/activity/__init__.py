"""Activity charts for operators and support: cash-outs by outcome, success rate, time to payout, failing webhooks."""
