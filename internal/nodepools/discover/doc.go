// Package discover finds the node pools of an EKS cluster and the IAM role
// each one pulls images as.
//
// Sources, each optional except static configuration:
//
//   - static pools: --node-role-arn (StaticPools) and a pools file
//     (LoadStaticPools);
//   - Nodes, read through a controller-runtime client.Reader (the manager's
//     watch-backed cache in the webhook): grouped by the labels EKS,
//     Karpenter and eksctl put on them, the pulling role of a group found
//     from spec.providerID (EC2 instance → instance profile → role) when no
//     other source gives it;
//   - Karpenter v1 NodePools and EC2NodeClasses, read as unstructured
//     objects through the same reader, so a NodePool with no nodes yet is a
//     candidate;
//   - EKS managed node groups and Fargate profiles (a ClusterSource), so a
//     group scaled to zero is a candidate.
//
// Provider combines them into one nodepools.Snapshot: a pool seen by two
// sources (a managed node group described by EKS and running nodes, a
// NodePool object and its nodes) is one pool. A source that fails keeps its
// last good answer and is named in Snapshot.Incomplete, so a failed lookup
// never turns into "no pool can run this pod". AWS is reached only through
// the ClusterSource and RoleResolver interfaces; the EKS, EC2 and IAM
// implementations with their caches live beside this file.
package discover
