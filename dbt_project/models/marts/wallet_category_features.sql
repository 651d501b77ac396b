-- One row per (wallet, market category): the wallet features restricted to one category.
{{ wallet_features(['wallet', 'category']) }}
