package central

// Barrier returns the central's draw barrier, for tests.
func (c *Central) Barrier() *Draw { return c.draw }

// Talking returns how many unauthenticated connections have sent something.
func (c *Central) Talking() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.talking.Len()
}
