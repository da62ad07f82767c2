package awsclient_test

import (
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"sync"
	"time"

	"github.com/ecr-preflight/ecr-preflight/internal/awsclient"
	"github.com/ecr-preflight/ecr-preflight/internal/awsclient/fake"
)

const (
	region   = "us-west-2"
	registry = "123456789012"
	digestA  = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB  = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digestC  = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	digestD  = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
)

// clock is a settable Clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// observer records reports.
type observer struct {
	mu     sync.Mutex
	calls  map[string]int // "operation outcome"
	hits   map[string]int
	misses map[string]int
}

func newObserver() *observer {
	return &observer{calls: map[string]int{}, hits: map[string]int{}, misses: map[string]int{}}
}

func (o *observer) ObserveCall(op, outcome string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls[op+" "+outcome]++
}

func (o *observer) CacheHit(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hits[kind]++
}

func (o *observer) CacheMiss(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.misses[kind]++
}

// env is a Lookups over fakes with a settable clock.
type env struct {
	ecr   *fake.ECR
	iam   *fake.IAM
	sts   *fake.STS
	clock *clock
	obs   *observer
	l     *awsclient.Lookups
}

func newEnv() *env {
	e := &env{
		ecr: &fake.ECR{Repositories: map[string]*fake.Repository{
			"team/app": {Images: []types.ImageDetail{fake.Image(digestA, "v1", "latest"), fake.Image(digestB, "v2")}},
			"empty":    {},
		}},
		iam:   &fake.IAM{Roles: map[string]*fake.Role{}, Policies: map[string]*fake.ManagedPolicy{}},
		sts:   &fake.STS{Account: registry},
		clock: newClock(),
		obs:   newObserver(),
	}
	e.l = awsclient.NewLookups(&fake.Clients{ECRClient: e.ecr, IAMClient: e.iam, STSClient: e.sts},
		awsclient.Options{Clock: e.clock, Observer: e.obs})
	return e
}

// teamApp is the repository most tests look in.
var teamApp = awsclient.Repository{Registry: awsclient.Registry{Region: region, Account: registry}, Name: "team/app"}
