DELETE FROM public.platform_metrics WHERE recorded_at < %(oldest)s
