package central

// Barrier returns the central's draw barrier, for tests.
func (c *Central) Barrier() *Draw { return c.draw }
