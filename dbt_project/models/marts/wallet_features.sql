-- One row per wallet: fills, resolved record, volume, realised P&L and market concentration, as of the
-- warehouse's latest data (point-in-time features for a past date come with the scoring stage).
{{ wallet_features(['wallet']) }}
