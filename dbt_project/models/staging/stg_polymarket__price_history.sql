select
    token_id,
    ts,
    to_timestamp(ts) as priced_at,
    price_date,
    price
from {{ source('raw', 'price_history') }}
