"""Email providers behind one interface (`base.EmailProvider`), and the failover chain."""
