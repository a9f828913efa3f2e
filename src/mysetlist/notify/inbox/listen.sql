-- What announce.sql signals (in the drain's transaction, heard at its commit).
LISTEN notify_inbox
