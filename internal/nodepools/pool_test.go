package nodepools

import (
	"reflect"
	"testing"
)

func TestRolePools(t *testing.T) {
	const (
		roleA = "arn:aws:iam::111122223333:role/NodeRoleA"
		roleB = "arn:aws:iam::111122223333:role/eks/nodes/NodeRoleB"
	)
	got := RolePools([]string{roleB, roleA, roleB, "not-an-arn"})
	want := []Pool{
		{Name: "NodeRoleB", Kind: KindStatic, RoleARN: roleB},
		{Name: "NodeRoleA", Kind: KindStatic, RoleARN: roleA},
		{Name: "not-an-arn", Kind: KindStatic, RoleARN: "not-an-arn"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RolePools =\n%+v\nwant\n%+v", got, want)
	}
	for _, p := range got[:2] {
		if !p.Anonymous() {
			t.Errorf("%+v is a bare role pool: findings should name its role, not the pool", p)
		}
	}
}
