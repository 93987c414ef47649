// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A test-only contract wallet: it vouches (ERC-1271) for any signature its owner key made over the hash.
/// Used by the Sign-In with Ethereum tests to prove contract-wallet signatures are checked on chain.
contract TestERC1271Wallet {
    bytes4 internal constant MAGIC_VALUE = 0x1626ba7e;
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        return ecrecover(hash, v, r, s) == owner ? MAGIC_VALUE : bytes4(0xffffffff);
    }
}
