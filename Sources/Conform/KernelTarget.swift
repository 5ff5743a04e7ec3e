import Replay
import Trace

extension ConformRunner.Target {
    /// Conformance on this machine's kernel: the same real groups for every
    /// rule, a fresh backend each; each rule's variant is picked by the
    /// profile the kernel's release maps to. Rules with emulated groups
    /// need one of the groups to hold the vfiotrace_pin test device.
    public static func kernel(groups: [String], devices: [String],
                              pinBudget: UInt64 = RealVFIOBackend.defaultPinBudget) throws(BackendSetupError) -> Self {
        let probe = try RealVFIOBackend.open(groups: groups, devices: devices, traceKinds: [:], pinBudget: pinBudget)
        let nodes = probe.groups
        var target = Self(name: "vfio:\(probe.kernelRelease)",
                          profile: KernelProfile.forKernelRelease(probe.kernelRelease) ?? .latest,
                          hasPinningDevice: nodes.contains { RealVFIOBackend.isEmulatedGroup($0) }) { events in
            .success(RealVFIOBackend(groups: nodes, traceKinds: RealVFIOBackend.traceGroupKinds(events), pinBudget: pinBudget))
        }
        target.machineHost = probeMachineHost(nodes: nodes, pinBudget: pinBudget)
        return target
    }

    /// What this machine's IOMMU answers, for the rules' host traits: a
    /// container with an IOMMU-backed group of `nodes`, TYPE1v2, GET_INFO and
    /// CHECK_EXTENSION DMA_CC, read as a trace's answers are
    /// (``HostModel/stated(by:over:)``). Nil without an IOMMU-backed group or
    /// when the probe fails (the rules then take the lab's defaults).
    static func probeMachineHost(nodes: [String], pinBudget: UInt64) -> HostModel? {
        let probe = """
        open /dev/vfio/vfio -> 3
        open /dev/vfio/1 -> 4
        group_set_container kind=iommu -> ok
        set_iommu TYPE1v2 -> ok
        get_info argsz=1024
        check_extension DMA_CC
        """
        guard nodes.contains(where: { !RealVFIOBackend.isEmulatedGroup($0) }),
              let events = try? TextParser.parse(probe).1 else { return nil }
        let backend = RealVFIOBackend(groups: nodes, traceKinds: RealVFIOBackend.traceGroupKinds(events), pinBudget: pinBudget)
        defer { backend.close() }
        let answered = events.map { backend.perform($0).event }
        guard answered.allSatisfy({ $0.result?.isSuccess == true }) else { return nil }
        let (host, traits) = HostModel.stated(by: answered)
        return traits.isEmpty ? nil : host
    }
}
