/* Memoised Ed25519 verification for the simulator (sigmemo.c): how often it verified for real
 * and how often it answered from memory, in this process. */
#ifndef CORRIDOR_SIM_SIGMEMO_H
#define CORRIDOR_SIM_SIGMEMO_H

extern unsigned long sigmemo_verified, sigmemo_remembered;

#endif
