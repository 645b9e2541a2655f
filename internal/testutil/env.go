package testutil

// EnvLookup returns a lookup over env with os.LookupEnv's signature: the
// environment a test gives the programs' config loaders instead of the
// process's own.
func EnvLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}
