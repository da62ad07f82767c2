// Package discover finds the node pools of an EKS cluster and the IAM role
// each one pulls images as.
//
// Sources, each optional except static configuration:
//
//   - static pools: --node-role-arn (nodepools.RolePools) and a pools file
//     (LoadStaticPools);
//   - Nodes, read through a controller-runtime client.Reader (the manager's
//     watch-backed cache in the webhook): grouped by the labels EKS,
//     Karpenter and eksctl put on them, the pulling role of a group found
//     from spec.providerID (EC2 instance → instance profile → role) when no
//     other source gives it. Only labels every node of a group carries
//     describe the pool, and never per-node ones (zone, instance type,
//     hostname: nodepools.OpenLabel), which stay open;
//   - Karpenter v1 NodePools and EC2NodeClasses, read as unstructured
//     objects through the same reader, so a NodePool with no nodes yet is a
//     candidate;
//   - EKS managed node groups and Fargate profiles (a ClusterSource), so a
//     group scaled to zero is a candidate.
//
// Provider combines them into one nodepools.Snapshot: a pool seen by two
// sources (a managed node group described by EKS and running nodes, a
// NodePool object and its nodes) is one pool. It asks every source again
// each Options.Refresh and re-reads the Kubernetes sources soon after
// Invalidate, which the webhook calls from its informers' event handlers.
//
// Failures are scoped to what they touch. A source that cannot be read
// keeps its last good answer and is named in Snapshot.Incomplete in a few
// words of our own ("EKS node groups: AccessDeniedException"), as a pool
// may be missing and "no pool can run this pod" is then not definite. A
// pool whose role cannot be found (EKS Hybrid Nodes, an EKS Auto Mode
// NodePool without nodes, instances that cannot be resolved) is a pool
// with no RoleARN: only pods that may land on it are answered as unknown.
// A role found before is kept while its lookup fails, and a group's role
// is that of the nodes whose role is known (a node whose instance just
// terminated does not take it away). Full errors and such details go to
// the log, each once until it changes. AWS is reached only through the
// ClusterSource and RoleResolver interfaces; the EKS, EC2 and IAM
// implementations with their caches live beside this file.
package discover
