"""Getting notifications out: a send request planned per recipient (`sending`), the drain that
sends due deliveries through the channels (`drain`, `channels`), digests, the jobs fed by
data (`event_feeds`), open and click tracking, and the daily analytics."""
