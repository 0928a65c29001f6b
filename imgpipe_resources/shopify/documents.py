"""Every GraphQL document the Shopify client sends (validated against the Admin schema in
the tests). Attachment goes through the Files API: ``fileCreate`` with a deterministic
filename, then ``fileUpdate(referencesToAdd:)``; ``productCreateMedia`` is deprecated."""

FIND_VARIANTS = """
query FindVariantsBySku($query: String!) {
  productVariants(first: 5, query: $query) {
    nodes { id sku product { id title handle } }
  }
}
"""

FIND_FILES = """
query FindFiles($query: String!) {
  files(first: 50, query: $query) {
    nodes {
      id
      alt
      fileStatus
      ... on MediaImage {
        image { url }
        originalSource { url }
      }
    }
  }
}
"""

PRODUCT_MEDIA = """
query ProductMedia($id: ID!) {
  product(id: $id) {
    id
    media(first: 250) { nodes { id alt status } }
  }
}
"""

FILE_STATUS = """
query FileStatus($id: ID!) {
  node(id: $id) {
    ... on MediaImage {
      id
      fileStatus
      mediaErrors { code message details }
      fileErrors { code message details }
    }
  }
}
"""

FILE_CREATE = """
mutation CreateFile($files: [FileCreateInput!]!) {
  fileCreate(files: $files) {
    files { id fileStatus alt }
    userErrors { field message code }
  }
}
"""

FILE_UPDATE = """
mutation UpdateFile($files: [FileUpdateInput!]!) {
  fileUpdate(files: $files) {
    files { id fileStatus }
    userErrors { field message code }
  }
}
"""

STAGED_UPLOAD = """
mutation StageUpload($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}
"""

REORDER_MEDIA = """
mutation ReorderMedia($id: ID!, $moves: [MoveInput!]!) {
  productReorderMedia(id: $id, moves: $moves) {
    job { id }
    mediaUserErrors { field message code }
  }
}
"""

ALL = {
    "FindVariantsBySku": FIND_VARIANTS,
    "FindFiles": FIND_FILES,
    "ProductMedia": PRODUCT_MEDIA,
    "FileStatus": FILE_STATUS,
    "CreateFile": FILE_CREATE,
    "UpdateFile": FILE_UPDATE,
    "StageUpload": STAGED_UPLOAD,
    "ReorderMedia": REORDER_MEDIA,
}
