/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A template as an OCI artifact (fleet.c, docs/fleet.md): its media types and annotations. */
#pragma once

#define OCI_MANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define ARTIFACT_TYPE "application/vnd.prewarm.template.v1"
#define CONFIG_TYPE "application/vnd.prewarm.template.config.v1+json"
#define LAYER_TYPE "application/vnd.prewarm.template.layer.v1.tar+zstd"

/* What a node needs to restore the template, and what it is: checkpointctl's keys
 * (checkpoint-restore/checkpointctl lib/annotations.go) where one fits, prewarm's own otherwise. */
#define ANNOTATION_ENGINE "org.criu.checkpoint.engine.name"
#define ANNOTATION_ENGINE_VERSION "org.criu.checkpoint.engine.version"
#define ANNOTATION_CRIU_VERSION "org.criu.checkpoint.criu.version"
#define ANNOTATION_KERNEL "org.criu.checkpoint.host.kernel"
#define ANNOTATION_ARCH "org.criu.checkpoint.host.arch"
#define ANNOTATION_CGROUP "org.criu.checkpoint.cgroup.version"
#define ANNOTATION_TEMPLATE "dev.prewarm.template.name"
#define ANNOTATION_RUNTIME "dev.prewarm.template.runtime"
#define ANNOTATION_CPUINFO "dev.prewarm.template.cpuinfo"

/* Beside a pulled template's manifest.json: the reference and digest it came from. */
#define SOURCE_FILE "source.json"
