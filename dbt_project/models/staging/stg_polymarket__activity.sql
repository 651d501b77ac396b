-- One row per accepted /activity row (raw.activity is validated and deduplicated at ingestion), typed and renamed.
select
    activity_key,
    proxy_wallet as wallet,
    type,
    condition_id,
    asset as token_id,
    side,
    size,
    usdc_size,
    price,
    ts,
    to_timestamp(ts) as activity_at,
    activity_date,
    transaction_hash,
    ingested_at
from {{ source('raw', 'activity') }}
