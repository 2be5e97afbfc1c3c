-- With TimescaleDB installed on the server, make `trades` a hypertable (chunked by time, with
-- compression-friendly ordering). Without it, nothing changes: rollup maintains the candles
-- itself with upserts on both paths, so the candles table stays an ordinary table.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            PERFORM create_hypertable('trades', 'time',
                chunk_time_interval => INTERVAL '1 day',
                if_not_exists => TRUE,
                migrate_data => TRUE);
        EXCEPTION WHEN OTHERS THEN
            -- Available but not loadable (not in shared_preload_libraries): plain tables.
            RAISE NOTICE 'TimescaleDB is available but could not be enabled (%); trades stays a plain table', SQLERRM;
        END;
    END IF;
END
$$;
