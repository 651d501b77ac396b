-- Every outcome token's market state as the marts last saw it: written after every incremental model has
-- applied this build's changes, and compared with the next build's tokens to find the markets that changed.
-- depends_on: {{ ref('int_position_fills') }}
-- depends_on: {{ ref('fct_positions') }}
-- depends_on: {{ ref('wallet_daily_returns') }}
-- depends_on: {{ ref('wallet_features') }}
-- depends_on: {{ ref('wallet_category_features') }}
-- depends_on: {{ ref('daily_digests') }}
{{ market_token_state() }}
