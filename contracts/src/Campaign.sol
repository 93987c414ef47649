// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @title Campaign
/// @notice The escrow of one market-making campaign. Deployed only as an EIP-1167 clone by CampaignFactory; its
///         parameters are the clone's immutable arguments, so nobody can change them after creation. There is
///         no owner, no upgrade, no pause and no selfdestruct. The only actions: fund, recordResults (by the
///         recording oracle), publishPayout (by the reputation oracle, within the epoch's budget), claim and
///         distribute (anyone, against the published Merkle root; each leaf paid once), and refund of what
///         no payout holds, to the creator, after the end plus the dispute window.
/// @dev Payout trees are OpenZeppelin StandardMerkleTrees over (uint256 index, address account, uint256 amount)
///      built with the leaves in index order (sortLeaves: false), so contiguous batches share their proofs.
contract Campaign is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct Params {
        IERC20 token;
        address creator;
        address recordingOracle;
        address reputationOracle;
        address feeRecipient;
        uint64 start;
        uint64 end;
        uint64 epochLength;
        uint64 disputeWindow;
        uint128 budget;
        uint16 feeBps;
        bytes32 metadataHash;
    }

    /// @dev One status word per epoch, created when its results are recorded, so that publishing a payout
    ///      only updates it (ADR 0010).
    struct EpochState {
        uint128 remaining; // published total not yet paid
        bool recorded;
        bool published;
    }

    /// @dev Length of the packed clone arguments: five addresses, four uint64, uint128, uint16, bytes32.
    uint256 internal constant ARGS_LENGTH = 5 * 20 + 4 * 8 + 16 + 2 + 32;
    uint256 internal constant AMOUNT_BITS = 96;
    uint256 internal constant AMOUNT_MASK = (1 << AMOUNT_BITS) - 1;
    bytes4 internal constant SAFE_ERC20_FAILED = 0x5274afe7; // SafeERC20FailedOperation(address)

    // `funded` and `outstanding` share one storage slot.
    bool public funded;
    /// @notice Published and not yet paid, over all epochs: what refund() must leave in the escrow.
    uint128 public outstanding;
    mapping(uint256 epoch => bytes32) public resultsHash;
    mapping(uint256 epoch => bytes32) public payoutRoot;
    mapping(uint256 epoch => EpochState) public epochs;
    mapping(uint256 epoch => mapping(uint256 word => uint256)) private _claimed;

    event Funded(address indexed from, uint256 amount);
    event ResultsRecorded(uint256 indexed epoch, bytes32 resultsHash, string uri);
    event PayoutPublished(uint256 indexed epoch, bytes32 merkleRoot, bytes32 manifestHash, uint256 total, uint256 fee);
    event Claimed(uint256 indexed epoch, uint256 indexed index, address indexed account, uint256 amount);
    event Distributed(uint256 indexed epoch, uint256 firstIndex, uint256 count, uint256 amount);
    event Refunded(address indexed creator, uint256 amount);

    error NotAClone();
    error Unauthorized(address caller);
    error AlreadyFunded();
    error NotFunded();
    error FeeOnTransferToken(uint256 received, uint256 expected);
    error CampaignOver();
    error UnknownEpoch(uint256 epoch);
    error EpochNotEnded(uint256 epoch, uint256 endsAt);
    error ResultsAlreadyRecorded(uint256 epoch);
    error ResultsMissing(uint256 epoch);
    error EmptyHash();
    error PayoutAlreadyPublished(uint256 epoch);
    error OverBudget(uint256 requested, uint256 available);
    error NoPayout(uint256 epoch);
    error AlreadyClaimed(uint256 epoch, uint256 index);
    error InvalidProof();
    error AmountTooLarge();
    error DisputeWindowOpen(uint256 until);
    error NothingToRefund();

    // ---------------------------------------------------------------------------------------------- reads

    /// @notice The immutable parameters, read from this clone's code.
    function params() public view returns (Params memory p) {
        bytes memory a = Clones.fetchCloneArgs(address(this));
        if (a.length != ARGS_LENGTH) revert NotAClone();
        assembly ("memory-safe") {
            let ptr := add(a, 32)
            mstore(p, shr(96, mload(ptr)))
            mstore(add(p, 0x20), shr(96, mload(add(ptr, 20))))
            mstore(add(p, 0x40), shr(96, mload(add(ptr, 40))))
            mstore(add(p, 0x60), shr(96, mload(add(ptr, 60))))
            mstore(add(p, 0x80), shr(96, mload(add(ptr, 80))))
            mstore(add(p, 0xa0), shr(192, mload(add(ptr, 100))))
            mstore(add(p, 0xc0), shr(192, mload(add(ptr, 108))))
            mstore(add(p, 0xe0), shr(192, mload(add(ptr, 116))))
            mstore(add(p, 0x100), shr(192, mload(add(ptr, 124))))
            mstore(add(p, 0x120), shr(128, mload(add(ptr, 132))))
            mstore(add(p, 0x140), shr(240, mload(add(ptr, 148))))
            mstore(add(p, 0x160), mload(add(ptr, 150)))
        }
    }

    function epochCount() public view returns (uint256) {
        return _epochCount(params());
    }

    /// @notice What an epoch may pay: the budget split evenly, the last epoch taking the remainder.
    function epochBudget(uint256 epoch) public view returns (uint256) {
        Params memory p = params();
        return _epochBudget(p, epoch, _epochCount(p));
    }

    function epochEnd(uint256 epoch) public view returns (uint256) {
        return _epochEnd(params(), epoch);
    }

    function isClaimed(uint256 epoch, uint256 index) public view returns (bool) {
        return _claimed[epoch][index >> 8] & (1 << (index & 0xff)) != 0;
    }

    // ---------------------------------------------------------------------------------------------- actions

    /// @notice Pull the whole budget from the creator (who approved this campaign) into the escrow, once.
    function fund() external nonReentrant {
        Params memory p = params();
        if (funded) revert AlreadyFunded();
        if (block.timestamp >= p.end) revert CampaignOver();
        funded = true;
        uint256 before = p.token.balanceOf(address(this));
        p.token.safeTransferFrom(p.creator, address(this), p.budget);
        uint256 received = p.token.balanceOf(address(this)) - before;
        if (received != p.budget) revert FeeOnTransferToken(received, p.budget);
        emit Funded(p.creator, p.budget);
    }

    function recordResults(uint256 epoch, bytes32 hash, string calldata uri) external {
        Params memory p = params();
        if (msg.sender != p.recordingOracle) revert Unauthorized(msg.sender);
        _checkClosableEpoch(p, epoch);
        if (hash == bytes32(0)) revert EmptyHash();
        if (epochs[epoch].recorded) revert ResultsAlreadyRecorded(epoch);
        resultsHash[epoch] = hash;
        epochs[epoch].recorded = true;
        emit ResultsRecorded(epoch, hash, uri);
    }

    function publishPayout(uint256 epoch, bytes32 merkleRoot, bytes32 manifestHash, uint256 total)
        external
        nonReentrant
    {
        Params memory p = params();
        if (msg.sender != p.reputationOracle) revert Unauthorized(msg.sender);
        if (!funded) revert NotFunded();
        _checkClosableEpoch(p, epoch);
        EpochState memory state = epochs[epoch];
        if (!state.recorded) revert ResultsMissing(epoch);
        if (state.published) revert PayoutAlreadyPublished(epoch);
        if (merkleRoot == bytes32(0) || manifestHash == bytes32(0)) revert EmptyHash();
        uint256 fee = total * p.feeBps / 10_000;
        uint256 available = _epochBudget(p, epoch, _epochCount(p));
        if (total + fee > available) revert OverBudget(total + fee, available);
        payoutRoot[epoch] = merkleRoot;
        epochs[epoch] = EpochState({remaining: uint128(total), recorded: true, published: true});
        outstanding += uint128(total);
        if (fee != 0) p.token.safeTransfer(p.feeRecipient, fee);
        emit PayoutPublished(epoch, merkleRoot, manifestHash, total, fee);
    }

    /// @notice Pay one leaf of an epoch's payout; anyone may send it, the amount always goes to `account`.
    function claim(uint256 epoch, uint256 index, address account, uint256 amount, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 root = payoutRoot[epoch];
        if (root == bytes32(0)) revert NoPayout(epoch);
        uint256 word = _claimed[epoch][index >> 8];
        uint256 bit = 1 << (index & 0xff);
        if (word & bit != 0) revert AlreadyClaimed(epoch, index);
        if (!MerkleProof.verifyCalldata(proof, root, _leaf(index, account, amount))) revert InvalidProof();
        _claimed[epoch][index >> 8] = word | bit;
        _settle(epoch, amount);
        params().token.safeTransfer(account, amount);
        emit Claimed(epoch, index, account, amount);
    }

    /// @notice Pay the leaves `firstIndex .. firstIndex + packed.length - 1` in one transaction, proven by one
    ///         OpenZeppelin multiproof. `packed[i] = uint256(uint160(account)) << 96 | amount`; the multiproof's
    ///         boolean flags come packed as bits (`flagBits[i / 256] >> (i % 256) & 1`), and there are
    ///         `packed.length + proof.length - 1` of them. Anyone may call; no cap but gas.
    function distribute(
        uint256 epoch,
        uint256 firstIndex,
        uint256[] calldata packed,
        bytes32[] calldata proof,
        uint256[] calldata flagBits
    ) external nonReentrant {
        bytes32 root = payoutRoot[epoch];
        if (root == bytes32(0)) revert NoPayout(epoch);
        (bytes32[] memory leaves, uint256 sum) = _markBatch(epoch, firstIndex, packed);
        // A tree in index order puts lower indices at higher positions: the multiproof takes them ascending.
        if (_multiProofRoot(leaves, proof, flagBits) != root) revert InvalidProof();
        _settle(epoch, sum);
        _payBatch(address(params().token), packed);
        emit Distributed(epoch, firstIndex, packed.length, sum);
    }

    /// @notice Return to the creator everything no published payout holds, once the campaign has ended and the
    ///         dispute window has passed. After that, no results or payouts can be published.
    function refund() external nonReentrant {
        Params memory p = params();
        uint256 until = uint256(p.end) + p.disputeWindow;
        if (block.timestamp < until) revert DisputeWindowOpen(until);
        uint256 balance = p.token.balanceOf(address(this));
        if (balance <= outstanding) revert NothingToRefund();
        uint256 amount = balance - outstanding;
        p.token.safeTransfer(p.creator, amount);
        emit Refunded(p.creator, amount);
    }

    // ---------------------------------------------------------------------------------------------- internals

    /// @dev OpenZeppelin StandardMerkleTree leaf: keccak256(bytes.concat(keccak256(abi.encode(index, account,
    ///      amount)))), computed in scratch memory so that a batch allocates nothing per leaf.
    function _leaf(uint256 index, address account, uint256 amount) internal pure returns (bytes32 leaf) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, index)
            mstore(add(ptr, 0x20), account)
            mstore(add(ptr, 0x40), amount)
            mstore(0x00, keccak256(ptr, 0x60))
            leaf := keccak256(0x00, 0x20)
        }
    }

    /// @dev ERC-20 transfers of a packed batch with SafeERC20's rules (a call that reverts, returns false, or
    ///      returns nothing from an address without code fails), reusing one calldata buffer.
    function _payBatch(address token, uint256[] calldata packed) internal {
        bool hasCode = token.code.length != 0;
        bytes4 failed = SAFE_ERC20_FAILED;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, shl(224, 0xa9059cbb)) // transfer(address,uint256)
            for { let i := 0 } lt(i, packed.length) { i := add(i, 1) } {
                let word := calldataload(add(packed.offset, shl(5, i)))
                mstore(add(ptr, 0x04), shr(96, word))
                mstore(add(ptr, 0x24), and(word, 0xffffffffffffffffffffffff))
                let ok := call(gas(), token, 0, ptr, 0x44, 0x00, 0x20)
                if iszero(ok) {
                    returndatacopy(ptr, 0, returndatasize())
                    revert(ptr, returndatasize())
                }
                let size := returndatasize()
                if iszero(or(and(eq(size, 0x20), eq(mload(0x00), 1)), and(iszero(size), hasCode))) {
                    mstore(0x00, failed)
                    mstore(0x04, token)
                    revert(0x00, 0x24)
                }
            }
        }
    }

    /// @dev Marks leaves firstIndex.. as paid, touching each bitmap word once (one store per 256 leaves), and
    ///      returns their leaf hashes and the sum of their amounts.
    function _markBatch(uint256 epoch, uint256 firstIndex, uint256[] calldata packed)
        internal
        returns (bytes32[] memory leaves, uint256 sum)
    {
        mapping(uint256 => uint256) storage bitmap = _claimed[epoch];
        leaves = new bytes32[](packed.length);
        uint256 wordIndex = firstIndex >> 8;
        uint256 word = bitmap[wordIndex];
        for (uint256 i; i < packed.length; ++i) {
            uint256 index = firstIndex + i;
            if (index >> 8 != wordIndex) {
                bitmap[wordIndex] = word;
                wordIndex = index >> 8;
                word = bitmap[wordIndex];
            }
            uint256 bit = 1 << (index & 0xff);
            if (word & bit != 0) revert AlreadyClaimed(epoch, index);
            word |= bit;
            uint256 amount = packed[i] & AMOUNT_MASK;
            leaves[i] = _leaf(index, address(uint160(packed[i] >> AMOUNT_BITS)), amount);
            sum += amount;
        }
        bitmap[wordIndex] = word;
    }

    /// @dev OpenZeppelin's `processMultiProof` (same queue walk, same commutative node hash, so the same proofs
    ///      verify), reading the flags as bits and reusing the leaves array as the queue's storage.
    function _multiProofRoot(bytes32[] memory leaves, bytes32[] calldata proof, uint256[] calldata flagBits)
        internal
        pure
        returns (bytes32 result)
    {
        if (leaves.length == 0 || flagBits.length << 8 < leaves.length + proof.length - 1) revert InvalidProof();
        bytes32[] memory hashes = new bytes32[](leaves.length + proof.length);
        assembly ("memory-safe") {
            // The queue's cursors live in scratch memory past the free pointer (st: leaf, leaf end, hash read),
            // which keeps the stack shallow. next() pops the next leaf, else the next computed hash, and never
            // one that is not written yet.
            function fail() {
                mstore(0x00, shl(224, 0x09bde339)) // InvalidProof()
                revert(0x00, 0x04)
            }
            function next(st, written) -> v {
                let leafPtr := mload(st)
                switch lt(leafPtr, mload(add(st, 0x20)))
                case 1 {
                    v := mload(leafPtr)
                    mstore(st, add(leafPtr, 0x20))
                }
                default {
                    let hashRead := mload(add(st, 0x40))
                    if iszero(lt(hashRead, written)) { fail() }
                    v := mload(hashRead)
                    mstore(add(st, 0x40), add(hashRead, 0x20))
                }
            }
            let st := mload(0x40)
            mstore(st, add(leaves, 0x20))
            mstore(add(st, 0x20), add(add(leaves, 0x20), shl(5, mload(leaves))))
            mstore(add(st, 0x40), add(hashes, 0x20))
            let total := sub(add(mload(leaves), proof.length), 1)
            let proofPtr := proof.offset
            for { let i := 0 } lt(i, total) { i := add(i, 1) } {
                let written := add(add(hashes, 0x20), shl(5, i))
                let a := next(st, written)
                let b
                switch and(shr(and(i, 0xff), calldataload(add(flagBits.offset, shl(5, shr(8, i))))), 1)
                case 1 { b := next(st, written) }
                default {
                    if iszero(lt(proofPtr, add(proof.offset, shl(5, proof.length)))) { fail() }
                    b := calldataload(proofPtr)
                    proofPtr := add(proofPtr, 0x20)
                }
                // Commutative keccak of the pair, as OpenZeppelin's Hashes.commutativeKeccak256.
                switch lt(a, b)
                case 1 {
                    mstore(0x00, a)
                    mstore(0x20, b)
                }
                default {
                    mstore(0x00, b)
                    mstore(0x20, a)
                }
                mstore(written, keccak256(0x00, 0x40))
            }
            // Every leaf and every proof element must have been used.
            if iszero(and(eq(mload(st), mload(add(st, 0x20))), eq(proofPtr, add(proof.offset, shl(5, proof.length))))) {
                fail()
            }
            switch total
            case 0 { result := mload(add(leaves, 0x20)) }
            default { result := mload(add(hashes, shl(5, total))) }
        }
    }

    function _settle(uint256 epoch, uint256 amount) internal {
        uint256 remaining = epochs[epoch].remaining;
        // Defence in depth: a root can never pay more than the total it was published with.
        if (amount > remaining) revert OverBudget(amount, remaining);
        epochs[epoch].remaining = uint128(remaining - amount);
        outstanding -= uint128(amount);
    }

    function _checkClosableEpoch(Params memory p, uint256 epoch) internal view {
        if (epoch >= _epochCount(p)) revert UnknownEpoch(epoch);
        uint256 endsAt = _epochEnd(p, epoch);
        if (block.timestamp < endsAt) revert EpochNotEnded(epoch, endsAt);
        if (block.timestamp >= uint256(p.end) + p.disputeWindow) revert CampaignOver();
    }

    function _epochCount(Params memory p) internal pure returns (uint256) {
        return (uint256(p.end) - p.start + p.epochLength - 1) / p.epochLength;
    }

    function _epochEnd(Params memory p, uint256 epoch) internal pure returns (uint256) {
        uint256 endsAt = uint256(p.start) + (epoch + 1) * p.epochLength;
        return endsAt < p.end ? endsAt : p.end;
    }

    function _epochBudget(Params memory p, uint256 epoch, uint256 count) internal pure returns (uint256) {
        if (epoch >= count) revert UnknownEpoch(epoch);
        uint256 each = uint256(p.budget) / count;
        return epoch == count - 1 ? uint256(p.budget) - each * (count - 1) : each;
    }
}
