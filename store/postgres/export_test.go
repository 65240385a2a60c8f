package postgres

// Internals the black-box tests need.
const MigrationLockKey = migrationLockKey

// Migrations returns the names of the embedded migrations in version order.
func Migrations() ([]string, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	return names, nil
}
