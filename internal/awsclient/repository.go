package awsclient

// Registry is one account's private ECR registry in one region: what
// registry-level settings (registry policy, policy scope, pull-through
// cache rules) belong to.
type Registry struct {
	Region  string
	Account string
}

// Repository is one ECR repository. It is comparable, so it can key maps.
type Repository struct {
	Registry
	// Name is the repository name, e.g. team/app.
	Name string
}
