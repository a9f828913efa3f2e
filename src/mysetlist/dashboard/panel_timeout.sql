-- A slow panel gives up alone instead of holding the page (and a connection): the
-- statement timeout of this panel's transaction, in ms.
SELECT set_config('statement_timeout', %(timeout_ms)s, true)
