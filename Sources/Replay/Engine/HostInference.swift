import Trace

extension HostModel {
    /// The host traits a trace states itself, over the defaults: what
    /// depends on the IOMMU hardware rather than on type1, taken from the
    /// answers the recording host gave while an IOMMU-backed group was
    /// attached to a container with type1 set:
    /// - GET_INFO's `iova_pgsizes`: the domain's page sizes (5.10's
    ///   intel-iommu advertises every size from 4K, 6.x's 4K|2M|1G);
    /// - GET_INFO's IOVA-range capability: the domain's usable ranges;
    /// - CHECK_EXTENSION(VFIO_DMA_CC_IOMMU): whether the domain enforces
    ///   cache coherency;
    /// - an IOMMU-backed group attached to a container opened as
    ///   TYPE1_NESTING (in either order): the domain takes nesting.
    /// Only successful calls count; the last answer wins. Returns the model
    /// and one line per trait taken, for the report.
    public static func stated<S: Sequence>(by events: S, over base: HostModel = HostModel()) -> (HostModel, [String])
    where S.Element == Event {
        var host = base
        var learned: [String: String] = [:]
        var typeSet: Set<Int32> = []
        var nestingContainers: Set<Int32> = []
        var containerOfGroup: [Int32: Int32] = [:]
        var iommuGroups: [Int32: Set<Int32>] = [:]
        func ok(_ r: CallResult?) -> Bool { if case .ok? = r { return true }; return false }
        func learnedNesting() {
            host.domainSupportsNesting = true
            learned["nesting"] = "yes"
        }
        func hasDomain(_ c: Int32) -> Bool { typeSet.contains(c) && !(iommuGroups[c] ?? []).isEmpty }
        for e in events {
            switch e.body {
            case .setIOMMU(let x) where ok(x.result):
                typeSet.insert(x.fd)
                if x.iommuType == 6 {
                    nestingContainers.insert(x.fd)
                    if !(iommuGroups[x.fd] ?? []).isEmpty { learnedNesting() }
                }
            case .groupSetContainer(let x) where ok(x.result):
                containerOfGroup[x.fd] = x.container
                if x.kind == .iommu {
                    iommuGroups[x.container, default: []].insert(x.fd)
                    if nestingContainers.contains(x.container) { learnedNesting() }
                }
            case .groupUnsetContainer(let x) where ok(x.result):
                if let c = containerOfGroup.removeValue(forKey: x.fd) { iommuGroups[c]?.remove(x.fd) }
            case .close(let x) where ok(x.result):
                if let c = containerOfGroup.removeValue(forKey: x.fd) { iommuGroups[c]?.remove(x.fd) }
                typeSet.remove(x.fd)
                nestingContainers.remove(x.fd)
            case .getInfo(let x) where ok(x.result) && hasDomain(x.fd):
                guard let info = x.info else { break }
                if info.flags & 1 != 0, info.iovaPgsizes != 0 {
                    host.domainPgsizeBitmap = info.iovaPgsizes
                    learned["page sizes"] = TextSyntax.hex(info.iovaPgsizes)
                }
                for cap in info.caps {
                    if case .iovaRanges(let r) = cap.body, !r.isEmpty, r.allSatisfy({ $0.start <= $0.end }) {
                        host.domainIOVARanges = r.map { $0.start...$0.end }
                        learned["IOVA ranges"] = r.map { "\(TextSyntax.hex($0.start))-\(TextSyntax.hex($0.end))" }.joined(separator: ",")
                    }
                }
            case .checkExtension(let x) where x.ext == 4 && hasDomain(x.fd):
                if case .ok(let v)? = x.result {
                    host.domainEnforcesCacheCoherency = v == 1
                    learned["cache coherency (DMA_CC)"] = v == 1 ? "yes" : "no"
                }
            default:
                break
            }
        }
        return (host, learned.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })
    }
}
