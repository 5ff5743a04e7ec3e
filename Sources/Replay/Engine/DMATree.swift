/// The shape of type1's `iommu->dma_list`: a red-black tree of mappings
/// keyed by IOVA (lib/rbtree.c, with `vfio_link_dma` choosing the leaf).
///
/// Only the shape matters to the model: before 5.12, `vfio_dma_do_unmap`
/// finds each next mapping to remove with `vfio_find_dma`, which descends
/// from the root and returns the first overlapping node it meets, so an
/// UNMAP over several mappings visits them in an order set by the tree's
/// history of inserts and erases, and each writes whole words of the
/// caller's bitmap (a later unshifted one wipes an earlier one's bits; seen
/// on Debian's 5.10). Since 5.12 ("vfio/type1: massage unmap iteration") it
/// walks in IOVA order and the shape no longer shows.
///
/// Insert and erase rebalance as lib/rbtree.c does: the classic algorithm,
/// an erased node with two children replaced by its successor (the leftmost
/// node of its right subtree), the same rotations and recolouring cases.
final class DMATree {
    final class Node {
        let mapping: DMAMapping
        var red = true
        var left: Node?
        var right: Node?
        /// Unowned, not weak: every node is held by ``DMATree/nodes`` for as
        /// long as it is in the tree, so a parent outlives its children; a
        /// weak reference would give every node a side table and make each
        /// retain and release take the slow path (most of a MAP's time).
        unowned var parent: Node?
        init(_ m: DMAMapping) { mapping = m }
    }

    private(set) var root: Node?
    private var nodes: [ObjectIdentifier: Node] = [:]

    var count: Int { nodes.count }

    /// `vfio_link_dma` + `rb_insert_color`.
    func insert(_ m: DMAMapping) {
        let n = Node(m)
        nodes[ObjectIdentifier(m)] = n
        var parent: Node? = nil
        var at = root
        var goLeft = false
        while let p = at {
            parent = p
            goLeft = m.iova &+ m.size <= p.mapping.iova
            at = goLeft ? p.left : p.right
        }
        n.parent = parent
        if let parent {
            if goLeft { parent.left = n } else { parent.right = n }
        } else {
            root = n
        }
        insertFixup(n)
    }

    /// `vfio_find_dma(iommu, start, size)`: descends from the root and
    /// returns the first mapping overlapping `[start, start + size)`.
    func find(start: UInt64, size: UInt64) -> DMAMapping? {
        var at = root
        while let n = at {
            if start &+ size <= n.mapping.iova {
                at = n.left
            } else if start >= n.mapping.iova &+ n.mapping.size {
                at = n.right
            } else {
                return n.mapping
            }
        }
        return nil
    }

    /// `rb_erase`.
    func remove(_ m: DMAMapping) {
        guard let z = nodes.removeValue(forKey: ObjectIdentifier(m)) else { return }
        var removedRed = z.red
        let x: Node?
        let xParent: Node?
        if z.left == nil {
            x = z.right
            xParent = z.parent
            transplant(z, z.right)
        } else if z.right == nil {
            x = z.left
            xParent = z.parent
            transplant(z, z.left)
        } else {
            // The successor takes z's place and colour.
            var y = z.right!
            while let l = y.left { y = l }
            removedRed = y.red
            x = y.right
            if y.parent === z {
                xParent = y
            } else {
                xParent = y.parent
                transplant(y, y.right)
                y.right = z.right
                y.right?.parent = y
            }
            transplant(z, y)
            y.left = z.left
            y.left?.parent = y
            y.red = z.red
        }
        if !removedRed { eraseFixup(x, parent: xParent) }
    }

    func removeAll() {
        root = nil
        nodes = [:]
    }

    // MARK: - Rebalancing

    private func transplant(_ u: Node, _ v: Node?) {
        if let p = u.parent {
            if p.left === u { p.left = v } else { p.right = v }
        } else {
            root = v
        }
        v?.parent = u.parent
    }

    private func rotateLeft(_ x: Node) {
        guard let y = x.right else { return }
        x.right = y.left
        y.left?.parent = x
        transplant(x, y)
        y.left = x
        x.parent = y
    }

    private func rotateRight(_ x: Node) {
        guard let y = x.left else { return }
        x.left = y.right
        y.right?.parent = x
        transplant(x, y)
        y.right = x
        x.parent = y
    }

    private func insertFixup(_ node: Node) {
        var z = node
        while let p = z.parent, p.red, let g = p.parent {
            if p === g.left {
                if let u = g.right, u.red {
                    p.red = false; u.red = false; g.red = true
                    z = g
                } else {
                    if z === p.right {
                        z = p
                        rotateLeft(z)
                    }
                    z.parent!.red = false
                    z.parent!.parent!.red = true
                    rotateRight(z.parent!.parent!)
                }
            } else {
                if let u = g.left, u.red {
                    p.red = false; u.red = false; g.red = true
                    z = g
                } else {
                    if z === p.left {
                        z = p
                        rotateRight(z)
                    }
                    z.parent!.red = false
                    z.parent!.parent!.red = true
                    rotateLeft(z.parent!.parent!)
                }
            }
        }
        root?.red = false
    }

    private func eraseFixup(_ node: Node?, parent: Node?) {
        var x = node
        var parent = parent
        while x !== root, !(x?.red ?? false), let p = parent {
            if x === p.left {
                var w = p.right!
                if w.red {
                    w.red = false; p.red = true
                    rotateLeft(p)
                    w = p.right!
                }
                if !(w.left?.red ?? false) && !(w.right?.red ?? false) {
                    w.red = true
                    x = p
                    parent = p.parent
                } else {
                    if !(w.right?.red ?? false) {
                        w.left?.red = false
                        w.red = true
                        rotateRight(w)
                        w = p.right!
                    }
                    w.red = p.red
                    p.red = false
                    w.right?.red = false
                    rotateLeft(p)
                    x = root
                    parent = nil
                }
            } else {
                var w = p.left!
                if w.red {
                    w.red = false; p.red = true
                    rotateRight(p)
                    w = p.left!
                }
                if !(w.right?.red ?? false) && !(w.left?.red ?? false) {
                    w.red = true
                    x = p
                    parent = p.parent
                } else {
                    if !(w.left?.red ?? false) {
                        w.right?.red = false
                        w.red = true
                        rotateLeft(w)
                        w = p.left!
                    }
                    w.red = p.red
                    p.red = false
                    w.left?.red = false
                    rotateRight(p)
                    x = root
                    parent = nil
                }
            }
        }
        x?.red = false
    }
}
