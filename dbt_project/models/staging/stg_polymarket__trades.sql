-- One row per accepted fill (raw.trades is validated and deduplicated at ingestion), typed and renamed.
select
    fill_key,
    proxy_wallet as wallet,
    condition_id,
    asset as token_id,
    side,
    size,
    price,
    size * price as notional,
    ts,
    to_timestamp(ts) as traded_at,
    trade_date,
    transaction_hash
from {{ source('raw', 'trades') }}
