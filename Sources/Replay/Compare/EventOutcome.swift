import Trace

extension Event {
    /// The event with every outcome field removed: what the caller passed.
    /// Two recordings of the same workload agree on this.
    public var inputs: Event {
        var e = self
        e.time = 0
        e.tid = 0
        switch body {
        case .open(var x): x.result = nil; e.body = .open(x)
        case .close(var x): x.result = nil; e.body = .close(x)
        case .getAPIVersion(var x): x.result = nil; e.body = .getAPIVersion(x)
        case .checkExtension(var x): x.result = nil; e.body = .checkExtension(x)
        case .setIOMMU(var x): x.result = nil; e.body = .setIOMMU(x)
        case .getInfo(var x): x.result = nil; x.info = nil; e.body = .getInfo(x)
        case .mapDMA(var x): x.result = nil; e.body = .mapDMA(x)
        case .unmapDMA(var x): x.result = nil; x.sizeOut = nil; x.bitmapOut = nil; e.body = .unmapDMA(x)
        case .dirtyPages(var x): x.result = nil; x.bitmapOut = nil; e.body = .dirtyPages(x)
        case .groupGetStatus(var x): x.result = nil; x.flagsOut = nil; e.body = .groupGetStatus(x)
        case .groupSetContainer(var x): x.result = nil; e.body = .groupSetContainer(x)
        case .groupUnsetContainer(var x): x.result = nil; e.body = .groupUnsetContainer(x)
        case .groupGetDeviceFD(var x): x.result = nil; e.body = .groupGetDeviceFD(x)
        case .pin(var x): x.result = nil; e.body = .pin(x)
        case .unpin(var x): x.result = nil; e.body = .unpin(x)
        case .dmaRW(var x): x.result = nil; e.body = .dmaRW(x)
        case .rawIoctl(var x): x.result = nil; x.argOut = nil; e.body = .rawIoctl(x)
        case .marker, .loss: break
        }
        return e
    }

    /// The call's return value or errno, when the event has one.
    public var result: CallResult? {
        switch body {
        case .open(let x): x.result
        case .close(let x): x.result
        case .getAPIVersion(let x): x.result
        case .checkExtension(let x): x.result
        case .setIOMMU(let x): x.result
        case .getInfo(let x): x.result
        case .mapDMA(let x): x.result
        case .unmapDMA(let x): x.result
        case .dirtyPages(let x): x.result
        case .groupGetStatus(let x): x.result
        case .groupSetContainer(let x): x.result
        case .groupUnsetContainer(let x): x.result
        case .groupGetDeviceFD(let x): x.result
        case .pin(let x): x.result
        case .unpin(let x): x.result
        case .dmaRW(let x): x.result
        case .rawIoctl(let x): x.result
        case .marker, .loss: nil
        }
    }

    /// The event's inputs as one line of the text form, standing alone
    /// (every fd spelled out).
    public var inputLine: String {
        var p = TextPrinter()
        var e = inputs
        let seq = e.seq
        e.seq = 0
        return "#\(seq) " + p.line(for: e)
    }

    /// The bitmap a call wrote, with the range its bit 0 stands for.
    public var bitmapOutcome: (out: BitmapBytes?, base: UInt64, pgsize: UInt64)? {
        switch body {
        case .dirtyPages(let x):
            guard let r = x.range else { return nil }
            return (x.bitmapOut, r.iova, r.bitmap.pgsize)
        case .unmapDMA(let x):
            guard let b = x.bitmap else { return nil }
            return (x.bitmapOut, x.iova, b.pgsize)
        default: return nil
        }
    }
}
