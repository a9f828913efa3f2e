CREATE TABLE {partition} PARTITION OF {parent} FOR VALUES FROM ({lo}) TO ({hi})
