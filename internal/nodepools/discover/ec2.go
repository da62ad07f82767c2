package discover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"github.com/ecr-preflight/ecr-preflight/internal/flight"
)

const (
	// DefaultRoleTTL is how long an IAM answer (instance profile → role,
	// role name → ARN) is kept when NewInstances is given a zero TTL: the
	// same staleness awsclient accepts for role policies.
	DefaultRoleTTL = 5 * time.Minute

	// maxIDsPerCall is the most instance IDs one DescribeInstances names:
	// the limit EC2 states for explicit instance ID lists in its other
	// instance APIs (DescribeInstances itself states none).
	maxIDsPerCall = 1000
	// maxFilterValues is EC2's limit on the values of one filter
	// (FilterLimitExceeded beyond it).
	maxFilterValues = 200
	// maxProfileFetches bounds concurrent GetInstanceProfile calls: IAM's
	// request rate is per account and shared with everything else.
	maxProfileFetches = 4
	// flightTimeout bounds the AWS work of one de-duplicated lookup, which
	// runs detached from the caller that started it (see shared).
	flightTimeout = 30 * time.Second
)

// ErrNoRole is wrapped by InstanceProfileRole for an instance profile that
// holds no role: an instance launched with it has no IAM identity.
var ErrNoRole = errors.New("instance profile has no role")

// Instances resolves the IAM role that pulls images on an EC2 node: the
// role of the instance's instance profile (EC2 → IAM), or of the instance
// profile or role a Karpenter EC2NodeClass names. It is safe for concurrent
// use.
//
// Answers are cached: an instance's profile for twice the TTL (it changes
// only when the association or the instance is replaced), IAM answers for
// the TTL. Concurrent identical lookups share one AWS call. Errors are never
// cached.
type Instances struct {
	ec2For  func(region string) (EC2API, error)
	iam     IAMAPI
	ttl     time.Duration
	now     func() time.Time // the clock TTLs are judged by; tests replace it
	cache   *gocache.Cache
	flights singleflight.Group
}

// NewInstances returns Instances that reach EC2 in a region through
// ec2For(region) and IAM through iam (the cluster's own account: an
// instance profile lives in its instance's account). ttl is how long an
// IAM answer is kept: zero means DefaultRoleTTL, a negative TTL turns all
// caching off (answers are still shared by concurrent callers).
func NewInstances(ec2For func(region string) (EC2API, error), iam IAMAPI, ttl time.Duration) *Instances {
	if ttl == 0 {
		ttl = DefaultRoleTTL
	}
	return &Instances{
		ec2For: ec2For,
		iam:    iam,
		ttl:    ttl,
		now:    time.Now,
		// Expiry is judged against now (see get); go-cache's own expiry,
		// a minute later, only frees memory.
		cache: gocache.New(gocache.NoExpiration, 10*time.Minute),
	}
}

// InstanceRoles maps instance IDs of one region to the ARN of the role of
// each instance's instance profile. It makes one ec2:DescribeInstances per
// 1000 IDs not cached (following its pages) and one iam:GetInstanceProfile
// per distinct profile not cached. An instance that does not exist (or is
// not an instance ID), has no instance profile, or whose profile has no
// role is absent from the map. On failure the map still holds every role
// that could be found and the error (errors.Join) names what could not.
func (i *Instances) InstanceRoles(ctx context.Context, region string, ids []string) (map[string]string, error) {
	profiles, err := i.instanceProfiles(ctx, region, ids)
	errs := []error{err}

	byProfile := map[string][]string{} // profile name → instance IDs
	for id, arn := range profiles {
		if arn != "" {
			name := instanceProfileName(arn)
			byProfile[name] = append(byProfile[name], id)
		}
	}
	roles := make(map[string]string, len(profiles))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(maxProfileFetches)
	for name, instances := range byProfile {
		g.Go(func() error {
			role, err := i.InstanceProfileRole(ctx, name)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNoRole):
			case err != nil:
				slices.Sort(instances)
				errs = append(errs, fmt.Errorf("instances %s: %w", strings.Join(instances, ", "), err))
			default:
				for _, id := range instances {
					roles[id] = role
				}
			}
			return nil
		})
	}
	_ = g.Wait() // the goroutines report through errs
	return roles, errors.Join(errs...)
}

// instanceProfiles maps each existing instance among ids to its instance
// profile ARN, "" for none.
func (i *Instances) instanceProfiles(ctx context.Context, region string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	var missing []string
	for _, id := range ids {
		if seen[id] || !instanceIDPattern.MatchString(id) {
			continue
		}
		seen[id] = true
		if arn, ok := get[string](i, instanceKey(region, id)); ok {
			out[id] = arn
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	client, err := i.ec2For(region)
	if err != nil {
		return out, fmt.Errorf("getting an EC2 client for region %s: %w", region, err)
	}
	slices.Sort(missing) // the same set makes the same flight key
	var errs []error
	for batch := range slices.Chunk(missing, maxIDsPerCall) {
		key := "describe/" + region + "/" + strings.Join(batch, ",")
		found, err := shared(ctx, i, key, func(ctx context.Context) (map[string]string, error) {
			found, err := describeInstances(ctx, client, batch)
			if err != nil {
				return nil, err
			}
			for id, arn := range found {
				put(i, instanceKey(region, id), arn, 2*i.ttl)
			}
			return found, nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("describing %d instances in region %s: %w", len(batch), region, err))
			continue
		}
		for id, arn := range found {
			out[id] = arn
		}
	}
	return out, errors.Join(errs...)
}

// describeInstances returns the instance profile ARN of each of ids that
// exists. Naming the IDs makes EC2 fail the whole call if one is unknown
// (InvalidInstanceID.NotFound: a node whose instance was just terminated),
// so then it asks again through the instance-id filter, which ignores
// unknown IDs but takes fewer values per call.
func describeInstances(ctx context.Context, client EC2API, ids []string) (map[string]string, error) {
	found, err := describePages(ctx, client, &ec2.DescribeInstancesInput{InstanceIds: ids})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidInstanceID.NotFound" {
		return found, err
	}
	found = map[string]string{}
	for chunk := range slices.Chunk(ids, maxFilterValues) {
		page, err := describePages(ctx, client, &ec2.DescribeInstancesInput{
			Filters:    []ec2types.Filter{{Name: aws.String("instance-id"), Values: chunk}},
			MaxResults: aws.Int32(1000),
		})
		if err != nil {
			return nil, err
		}
		for id, arn := range page {
			found[id] = arn
		}
	}
	return found, nil
}

func describePages(ctx context.Context, client EC2API, in *ec2.DescribeInstancesInput) (map[string]string, error) {
	found := map[string]string{}
	pages := ec2.NewDescribeInstancesPaginator(client, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				arn := ""
				if inst.IamInstanceProfile != nil {
					arn = aws.ToString(inst.IamInstanceProfile.Arn)
				}
				found[aws.ToString(inst.InstanceId)] = arn
			}
		}
	}
	return found, nil
}

// InstanceProfileRole returns the ARN of the role in the instance profile
// with the given name (a Karpenter EC2NodeClass's spec.instanceProfile),
// through iam:GetInstanceProfile. A profile without a role gives an error
// wrapping ErrNoRole; a missing profile one wrapping IAM's
// *types.NoSuchEntityException.
func (i *Instances) InstanceProfileRole(ctx context.Context, name string) (string, error) {
	role, err := cached(ctx, i, "profile/"+name, i.ttl, func(ctx context.Context) (string, error) {
		out, err := i.iam.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: aws.String(name)})
		if err != nil {
			return "", err
		}
		// An instance profile holds at most one role (IAM quota, not
		// adjustable).
		if out.InstanceProfile == nil || len(out.InstanceProfile.Roles) == 0 {
			return "", nil
		}
		return aws.ToString(out.InstanceProfile.Roles[0].Arn), nil
	})
	switch {
	case err != nil:
		return "", fmt.Errorf("getting instance profile %s: %w", name, err)
	case role == "":
		return "", fmt.Errorf("instance profile %s: %w", name, ErrNoRole)
	}
	return role, nil
}

// RoleARN returns the ARN of the role with the given name (a Karpenter
// EC2NodeClass's spec.role), through iam:GetRole. A missing role gives an
// error wrapping IAM's *types.NoSuchEntityException.
func (i *Instances) RoleARN(ctx context.Context, name string) (string, error) {
	arn, err := cached(ctx, i, "role/"+name, i.ttl, func(ctx context.Context) (string, error) {
		out, err := i.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.Role.Arn), nil
	})
	if err != nil {
		return "", fmt.Errorf("getting role %s: %w", name, err)
	}
	return arn, nil
}

// instanceProfileName is the name in an instance profile ARN,
// arn:aws:iam::123456789012:instance-profile/PATH/NAME: GetInstanceProfile
// takes the name alone, which is unique in the account whatever the path.
func instanceProfileName(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}

func instanceKey(region, id string) string { return "instance/" + region + "/" + id }

// entry is a cached answer and when it expires on Instances.now.
type entry struct {
	val     any
	expires time.Time
}

func get[T any](i *Instances, key string) (T, bool) {
	var zero T
	v, ok := i.cache.Get(key)
	if !ok || !i.now().Before(v.(entry).expires) {
		return zero, false
	}
	return v.(entry).val.(T), true
}

func put(i *Instances, key string, val any, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	i.cache.Set(key, entry{val: val, expires: i.now().Add(ttl)}, ttl+time.Minute)
}

// cached returns the answer under key, or fetches it once for all
// concurrent callers and keeps it for ttl.
func cached[T any](ctx context.Context, i *Instances, key string, ttl time.Duration, fetch func(context.Context) (T, error)) (T, error) {
	if v, ok := get[T](i, key); ok {
		return v, nil
	}
	return shared(ctx, i, key, func(ctx context.Context) (T, error) {
		// A flight that ended between our miss and this one may have
		// filled the cache.
		if v, ok := get[T](i, key); ok {
			return v, nil
		}
		v, err := fetch(ctx)
		if err == nil {
			put(i, key, v, ttl)
		}
		return v, err
	})
}

// shared runs fetch once for all concurrent callers with the same key. It
// runs detached from the first caller's cancellation, under flightTimeout,
// so one caller giving up does not fail the others; each caller still
// returns as soon as its own context ends.
func shared[T any](ctx context.Context, i *Instances, key string, fetch func(context.Context) (T, error)) (T, error) {
	return flight.Do(ctx, &i.flights, key, func(ctx context.Context) (T, error) {
		ctx, cancel := context.WithTimeout(ctx, flightTimeout)
		defer cancel()
		return fetch(ctx)
	}, nil)
}
