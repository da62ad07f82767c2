package discover

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

const (
	armProfileARN = "arn:aws:iam::123456789012:instance-profile/eks/nodes-arm"
	x86ProfileARN = "arn:aws:iam::123456789012:instance-profile/nodes-x86"
	armRoleARN    = "arn:aws:iam::123456789012:role/NodeRoleArm"
	x86RoleARN    = "arn:aws:iam::123456789012:role/NodeRoleX86"
)

// instancesEnv is Instances over fakes, with a clock the test moves.
type instancesEnv struct {
	ec2 *fakeEC2
	iam *fakeIAM
	i   *Instances
	mu  sync.Mutex
	now time.Time
}

func newInstancesEnv(ttl time.Duration) *instancesEnv {
	e := &instancesEnv{
		ec2: &fakeEC2{Instances: map[string]string{
			"i-0000000000000000a": armProfileARN,
			"i-0000000000000000b": armProfileARN,
			"i-0000000000000000c": x86ProfileARN,
			"i-0000000000000000d": "",                                                         // launched without a profile
			"i-0000000000000000e": "arn:aws:iam::123456789012:instance-profile/empty-profile", // a profile without a role
		}},
		iam: &fakeIAM{
			Profiles: map[string]string{"nodes-arm": armRoleARN, "nodes-x86": x86RoleARN, "empty-profile": ""},
			Roles:    map[string]string{"KarpenterNodeRole": "arn:aws:iam::123456789012:role/karpenter/KarpenterNodeRole"},
		},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	e.i = NewInstances(func(region string) (EC2API, error) {
		if region != "us-west-2" {
			return nil, fmt.Errorf("no client for %s", region)
		}
		return e.ec2, nil
	}, e.iam, ttl)
	e.i.now = func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.now
	}
	return e
}

func (e *instancesEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *instancesEnv) roles(t *testing.T, ids ...string) map[string]string {
	t.Helper()
	got, err := e.i.InstanceRoles(context.Background(), "us-west-2", ids)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestInstanceRoles(t *testing.T) {
	e := newInstancesEnv(0)
	got := e.roles(t, "i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c", "i-0000000000000000d",
		"i-0000000000000000e", "i-0000000000000000a", "not-an-instance")
	want := map[string]string{"i-0000000000000000a": armRoleARN, "i-0000000000000000b": armRoleARN, "i-0000000000000000c": x86RoleARN}
	if !maps.Equal(got, want) {
		t.Errorf("InstanceRoles() = %v, want %v (no entry for an instance without a profile or role, or a malformed ID)", got, want)
	}
	if n := e.ec2.Calls("DescribeInstances"); n != 1 {
		t.Errorf("DescribeInstances calls = %d, want 1", n)
	}
	if in := e.ec2.Inputs()[0]; len(in.InstanceIds) != 5 {
		t.Errorf("DescribeInstances asked for %v, want the 5 distinct well-formed IDs", in.InstanceIds)
	}
	if n := e.iam.Calls("GetInstanceProfile"); n != 3 {
		t.Errorf("GetInstanceProfile calls = %d, want 3: one per distinct profile", n)
	}
}

func TestInstanceRolesOfNoInstanceAsksNothing(t *testing.T) {
	e := newInstancesEnv(0)
	if got := e.roles(t); len(got) != 0 {
		t.Errorf("InstanceRoles() = %v, want empty", got)
	}
	if n := e.ec2.Total() + e.iam.Total(); n != 0 {
		t.Errorf("%d calls, want none", n)
	}
}

func TestInstanceRolesBatchesAndFollowsPages(t *testing.T) {
	e := newInstancesEnv(0)
	e.ec2.PageSize = 400
	var ids []string
	for n := range 2500 {
		id := fmt.Sprintf("i-%017x", 0x100000+n)
		e.ec2.Instances[id] = x86ProfileARN
		ids = append(ids, id)
	}
	got := e.roles(t, ids...)
	if len(got) != 2500 {
		t.Errorf("%d roles, want 2500", len(got))
	}
	var sizes []int
	for _, in := range e.ec2.Inputs() {
		if in.NextToken == nil {
			sizes = append(sizes, len(in.InstanceIds))
		}
	}
	if fmt.Sprint(sizes) != "[1000 1000 500]" {
		t.Errorf("DescribeInstances batches = %v, want [1000 1000 500]", sizes)
	}
	// 1000 IDs at 400 a page are 3 pages, 500 are 2.
	if n := e.ec2.Calls("DescribeInstances"); n != 8 {
		t.Errorf("DescribeInstances calls = %d, want 8 (3 + 3 + 2 pages)", n)
	}
	if n := e.iam.Calls("GetInstanceProfile"); n != 1 {
		t.Errorf("GetInstanceProfile calls = %d, want 1", n)
	}
}

func TestInstanceRolesOfATerminatedInstance(t *testing.T) {
	// EC2 fails a DescribeInstances naming an unknown ID as a whole; the
	// filter by instance-id does not, 200 values at a time.
	e := newInstancesEnv(0)
	e.ec2.PageSize = 100
	ids := []string{"i-0000000000000000a", "i-0ffffffffffffffff"}
	for n := range 300 {
		id := fmt.Sprintf("i-%017x", 0x100000+n)
		e.ec2.Instances[id] = x86ProfileARN
		ids = append(ids, id)
	}
	got := e.roles(t, ids...)
	if len(got) != 301 || got["i-0000000000000000a"] != armRoleARN {
		t.Errorf("%d roles, want 301 (all but the missing instance)", len(got))
	}
	if _, ok := got["i-0ffffffffffffffff"]; ok {
		t.Error("a missing instance has a role")
	}
	var filterValues []int
	for _, in := range e.ec2.Inputs() {
		if len(in.Filters) == 1 && in.NextToken == nil {
			filterValues = append(filterValues, len(in.Filters[0].Values))
		}
	}
	if fmt.Sprint(filterValues) != "[200 102]" {
		t.Errorf("filtered calls with %v values, want [200 102]", filterValues)
	}
}

func TestInstanceRolesCachesAnswers(t *testing.T) {
	ttl := 5 * time.Minute
	e := newInstancesEnv(ttl)
	ids := []string{"i-0000000000000000a", "i-0000000000000000c", "i-0000000000000000d"}
	want := e.roles(t, ids...)
	calls := e.ec2.Total() + e.iam.Total()

	if got := e.roles(t, ids...); !maps.Equal(got, want) || e.ec2.Total()+e.iam.Total() != calls {
		t.Errorf("second call = %v with %d more AWS calls, want %v from the cache", got, e.ec2.Total()+e.iam.Total()-calls, want)
	}
	if arn, err := e.i.InstanceProfileRole(context.Background(), "nodes-arm"); err != nil || arn != armRoleARN || e.iam.Calls("GetInstanceProfile") != 2 {
		t.Errorf("InstanceProfileRole(nodes-arm) = %q, %v after %d GetInstanceProfile calls; want the role InstanceRoles cached", arn, err, e.iam.Calls("GetInstanceProfile"))
	}

	e.advance(ttl) // IAM answers expire; an instance's profile is kept twice as long
	if got := e.roles(t, ids...); !maps.Equal(got, want) {
		t.Errorf("after the TTL: %v, want %v", got, want)
	}
	if n := e.iam.Calls("GetInstanceProfile"); n != 4 {
		t.Errorf("GetInstanceProfile calls = %d, want 4: asked again after the TTL", n)
	}
	if n := e.ec2.Calls("DescribeInstances"); n != 1 {
		t.Errorf("DescribeInstances calls = %d, want 1: an instance's profile outlives the TTL", n)
	}

	e.advance(ttl)
	e.roles(t, ids...)
	if n := e.ec2.Calls("DescribeInstances"); n != 2 {
		t.Errorf("DescribeInstances calls = %d, want 2: asked again after twice the TTL", n)
	}
	if in := e.ec2.Inputs()[1]; len(in.InstanceIds) != 3 {
		t.Errorf("second DescribeInstances asked for %v, want the 3 instances, the one without a profile too", in.InstanceIds)
	}
}

func TestInstanceRolesAsksOnlyForInstancesNotCached(t *testing.T) {
	e := newInstancesEnv(0)
	e.roles(t, "i-0000000000000000a")
	e.roles(t, "i-0000000000000000a", "i-0000000000000000c")
	if in := e.ec2.Inputs(); len(in) != 2 || fmt.Sprint(in[1].InstanceIds) != "[i-0000000000000000c]" {
		t.Errorf("DescribeInstances inputs = %d, last %v; want the second to ask for i-0000000000000000c alone", len(in), in[len(in)-1].InstanceIds)
	}
}

func TestInstanceRolesWithoutCaching(t *testing.T) {
	e := newInstancesEnv(-1)
	e.roles(t, "i-0000000000000000a")
	e.roles(t, "i-0000000000000000a")
	if n, m := e.ec2.Calls("DescribeInstances"), e.iam.Calls("GetInstanceProfile"); n != 2 || m != 2 {
		t.Errorf("DescribeInstances, GetInstanceProfile calls = %d, %d; want 2, 2 with a negative TTL", n, m)
	}
}

func TestInstanceRolesErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("a failed DescribeInstances is reported and not cached", func(t *testing.T) {
		e := newInstancesEnv(0)
		cause := errors.New("UnauthorizedOperation")
		e.ec2.SetErr("DescribeInstances", cause)
		got, err := e.i.InstanceRoles(ctx, "us-west-2", []string{"i-0000000000000000a"})
		if len(got) != 0 || !errors.Is(err, cause) || !strings.Contains(err.Error(), "describing 1 instances in region us-west-2") {
			t.Errorf("InstanceRoles() = %v, %v; want nothing and the wrapped cause", got, err)
		}
		e.ec2.SetErr("DescribeInstances", nil)
		if got := e.roles(t, "i-0000000000000000a"); got["i-0000000000000000a"] != armRoleARN {
			t.Errorf("after the error cleared: %v", got)
		}
	})
	t.Run("a failed profile leaves the other instances' roles", func(t *testing.T) {
		e := newInstancesEnv(0)
		cause := errors.New("AccessDenied")
		e.iam.SetErr("GetInstanceProfile/nodes-arm", cause)
		got, err := e.i.InstanceRoles(ctx, "us-west-2", []string{"i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"})
		if !maps.Equal(got, map[string]string{"i-0000000000000000c": x86RoleARN}) {
			t.Errorf("InstanceRoles() = %v, want the x86 instance's role", got)
		}
		if want := "instances i-0000000000000000a, i-0000000000000000b: getting instance profile nodes-arm"; !errors.Is(err, cause) || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want one saying %q", err, want)
		}
	})
	t.Run("a region without a client", func(t *testing.T) {
		e := newInstancesEnv(0)
		_, err := e.i.InstanceRoles(ctx, "eu-west-1", []string{"i-0000000000000000a"})
		if err == nil || !strings.Contains(err.Error(), "getting an EC2 client for region eu-west-1") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("an ended context asks nothing", func(t *testing.T) {
		e := newInstancesEnv(0)
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.i.InstanceRoles(ctx, "us-west-2", []string{"i-0000000000000000a"}); !errors.Is(err, context.Canceled) || e.ec2.Total() != 0 {
			t.Errorf("error = %v after %d calls, want context.Canceled and no call", err, e.ec2.Total())
		}
	})
}

func TestConcurrentLookupsShareOneCall(t *testing.T) {
	e := newInstancesEnv(0)
	e.ec2.Delay = 50 * time.Millisecond
	e.iam.Delay = 50 * time.Millisecond
	ids := []string{"i-0000000000000000c", "i-0000000000000000a"}
	var wg sync.WaitGroup
	results := make([]map[string]string, 8)
	errs := make([]error, 8)
	for n := range results {
		wg.Go(func() {
			// The same set in another order is the same lookup.
			order := ids
			if n%2 == 1 {
				order = []string{ids[1], ids[0]}
			}
			results[n], errs[n] = e.i.InstanceRoles(context.Background(), "us-west-2", order)
		})
	}
	wg.Wait()
	for n := range results {
		if errs[n] != nil || len(results[n]) != 2 {
			t.Errorf("caller %d: %v, %v", n, results[n], errs[n])
		}
	}
	if n := e.ec2.Calls("DescribeInstances"); n != 1 {
		t.Errorf("DescribeInstances calls = %d, want 1 for 8 concurrent callers", n)
	}
	if n := e.iam.Calls("GetInstanceProfile"); n != 2 {
		t.Errorf("GetInstanceProfile calls = %d, want 2 (one per profile) for 8 concurrent callers", n)
	}
}

func TestACallerGivingUpDoesNotFailTheOthers(t *testing.T) {
	e := newInstancesEnv(0)
	e.iam.Delay = 100 * time.Millisecond
	impatient, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() {
		_, err := e.i.RoleARN(impatient, "KarpenterNodeRole")
		done <- err
	}()
	time.Sleep(time.Millisecond) // let the impatient caller start the flight
	arn, err := e.i.RoleARN(context.Background(), "KarpenterNodeRole")
	if err != nil || arn != "arn:aws:iam::123456789012:role/karpenter/KarpenterNodeRole" {
		t.Errorf("patient caller: %q, %v", arn, err)
	}
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("impatient caller: %v, want its own deadline", err)
	}
	if n := e.iam.Calls("GetRole"); n != 1 {
		t.Errorf("GetRole calls = %d, want 1 shared by both callers", n)
	}
}

func TestInstanceProfileRole(t *testing.T) {
	ctx := context.Background()
	e := newInstancesEnv(0)
	if arn, err := e.i.InstanceProfileRole(ctx, "nodes-arm"); err != nil || arn != armRoleARN {
		t.Errorf("InstanceProfileRole(nodes-arm) = %q, %v", arn, err)
	}
	for range 2 { // the second answer comes from the cache
		if _, err := e.i.InstanceProfileRole(ctx, "empty-profile"); !errors.Is(err, ErrNoRole) || !strings.Contains(err.Error(), "instance profile empty-profile") {
			t.Errorf("InstanceProfileRole(empty-profile) error = %v, want ErrNoRole", err)
		}
	}
	_, err := e.i.InstanceProfileRole(ctx, "missing")
	var noEntity *iamtypes.NoSuchEntityException
	if !errors.As(err, &noEntity) || !strings.Contains(err.Error(), "getting instance profile missing") {
		t.Errorf("InstanceProfileRole(missing) error = %v, want a wrapped NoSuchEntityException", err)
	}
	if n := e.iam.Calls("GetInstanceProfile"); n != 3 {
		t.Errorf("GetInstanceProfile calls = %d, want 3: a profile without a role is an answer, cached", n)
	}
}

func TestRoleARN(t *testing.T) {
	ctx := context.Background()
	e := newInstancesEnv(time.Minute)
	for range 2 {
		if arn, err := e.i.RoleARN(ctx, "KarpenterNodeRole"); err != nil || arn != "arn:aws:iam::123456789012:role/karpenter/KarpenterNodeRole" {
			t.Errorf("RoleARN() = %q, %v", arn, err)
		}
	}
	if n := e.iam.Calls("GetRole"); n != 1 {
		t.Errorf("GetRole calls = %d, want 1: the second answer is cached", n)
	}
	e.advance(time.Minute)
	if _, err := e.i.RoleARN(ctx, "KarpenterNodeRole"); err != nil || e.iam.Calls("GetRole") != 2 {
		t.Errorf("after the TTL: %v with %d GetRole calls, want 2", err, e.iam.Calls("GetRole"))
	}
	for range 2 { // a missing role is an error, asked again each time
		_, err := e.i.RoleARN(ctx, "Nope")
		var noEntity *iamtypes.NoSuchEntityException
		if !errors.As(err, &noEntity) || !strings.Contains(err.Error(), "getting role Nope") {
			t.Errorf("RoleARN(Nope) error = %v, want a wrapped NoSuchEntityException", err)
		}
	}
	if n := e.iam.Calls("GetRole"); n != 4 {
		t.Errorf("GetRole calls = %d, want 4", n)
	}
}
