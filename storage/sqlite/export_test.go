package sqlite

import "context"

// Optimize runs the planner statistics refresh that Open and the hourly
// loop run.
func (d *Driver) Optimize(ctx context.Context) error { return d.optimize(ctx) }
